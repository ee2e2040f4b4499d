"""Journey definitions as loaded from files: templates, rendering and the validated catalog."""
