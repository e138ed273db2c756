"""The report itself: warehouse rows → SPEC §5's order → chunks rendered in parallel → one file."""
