"""The web tier's only way to the data: one function per call of the experience tier's JSON API
(docs/api.md). Each returns the upstream Reply (its `data`, and its headers for X-Cache-Tags);
4xx answers raise marketplace.api.ApiError and a tier that is down raises
marketplace.upstream.Unavailable, both handled by the views and web.middleware."""
from marketplace import upstream

PREFIX = "/exp/v1"


def _call(method, path, *, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return upstream.call("experience", method, PREFIX + path, headers=headers, **kwargs)


def home():
    return _call("GET", "/home")


def listing(listing_id):
    return _call("GET", f"/listings/{int(listing_id)}")


def seller(seller_id, page=1):
    return _call("GET", f"/sellers/{int(seller_id)}", params={"page": page})


def search(q="", page=1):
    return _call("GET", "/search", params={"q": q, "page": page})


def signup(username, email, password, password_confirm):
    return _call("POST", "/signup", json={"username": username, "email": email,
                                          "password": password,
                                          "password_confirm": password_confirm}, slow=True)


def login(username, password):
    return _call("POST", "/login", json={"username": username, "password": password}, slow=True)


def logout(token):
    return _call("POST", "/logout", token=token)


def me(token):
    return _call("GET", "/me", token=token)


def create_listing(token, title, description, price):
    # the price travels as a decimal string ("12.50"): a float would lose cents
    return _call("POST", "/listings", token=token,
                 json={"title": title, "description": description, "price": str(price)})
