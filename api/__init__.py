"""The governance service: FastAPI app, auth, routers and the Kafka consumer beside it."""
