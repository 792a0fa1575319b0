"""Run a plan: stream source to target with a journal that makes every run resumable."""
