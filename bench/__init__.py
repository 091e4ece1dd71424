"""Developer tools, never installed: the benchmark (speed), the accuracy evaluation and the report render check."""
