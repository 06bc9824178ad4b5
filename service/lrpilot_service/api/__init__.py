"""The HTTP face of the job store: FastAPI app factory, routers, settings and serving."""
