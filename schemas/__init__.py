"""pandera schemas guarding each stage's output (one module per stage)."""
