"""The API's routers: scores (per user and batch), the model, health and metrics."""
