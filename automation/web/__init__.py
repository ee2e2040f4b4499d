"""The `web` process: provider webhooks, unsubscribe links, health and metrics.

`app.create_app` builds the Starlette application from live objects; the CLI
(`automation web`) builds those from settings and serves it with uvicorn.
"""
