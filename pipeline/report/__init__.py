"""What people read: the HTML report and the per-street hand-offs."""
