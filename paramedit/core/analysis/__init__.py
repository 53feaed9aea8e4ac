"""Reading the whole model: the health scan, checkpoint comparison, chunked reads."""
