"""The API's routers, one per audience; every route calls one core service operation."""
