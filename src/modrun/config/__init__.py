"""Units of the flags (Go durations and sizes) and the defaults shared by every command."""
