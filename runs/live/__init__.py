"""Live updates: what a run's page and the runs list see change without reloading.

`broadcast` publishes a run's update once (one Redis PUBLISH; in-process without REDIS_URL) and fans it
out to the sockets of the process; `consumers` are the WebSocket endpoints that check who may watch;
`routing` mounts them on the ASGI app. docs/live.md tells the whole path.
"""
