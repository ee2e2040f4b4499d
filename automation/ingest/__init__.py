"""Customer records into customer state: one path for files and the tracking API."""
