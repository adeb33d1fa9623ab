"""Run-folder files: atomic writes and local or object-store storage."""
