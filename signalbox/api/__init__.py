"""HTTP entry point: FastAPI app assembly, auth, error mapping, one router per capability."""
