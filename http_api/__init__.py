"""sdflow's HTTP and WebSocket API, in ComfyUI's shapes: routes, the WebSocket hub and the
security checks. `server.py` assembles them into the application; everything here reaches the
engine through its public modules only.
"""
