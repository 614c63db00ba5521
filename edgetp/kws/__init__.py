"""Keyword-spotting protocols: pretraining and the paper's speaker adaptation."""
