"""The local stack (mocks, API, workers as processes) and the demo run on it."""
