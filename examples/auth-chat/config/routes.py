"""HTTP routes, in actionhero's shape: per verb, a path under /api with `:params`.

    curl -b 'sessionID=<your cookie>' http://127.0.0.1:8080/api/users/carol

`/api/<action>` keeps working for every action; a route adds a nicer path. The `:name` part
becomes `params["name"]` of the `user` action.
"""

DEFAULT = {
    "routes": {
        "get": [
            {"path": "/users/:name", "action": "user"},
        ],
    },
}
