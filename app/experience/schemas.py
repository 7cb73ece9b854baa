"""What the experience API accepts and returns. The objects it returns are the entity tier's
wire format (entity.schemas describes it once); the screens compose them."""
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from ninja import Schema
from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from entity.schemas import ListingOut, UserOut

ShortText = Annotated[str, StringConstraints(max_length=200)]


class Strict(Schema):
    model_config = {"extra": "forbid"}


class SignupIn(Strict):
    username: ShortText
    email: ShortText
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    password_confirm: Annotated[str, StringConstraints(max_length=128)]

    @field_validator("password_confirm")
    @classmethod
    def passwords_match(cls, value, info: ValidationInfo):
        if "password" in info.data and value != info.data["password"]:
            raise ValueError("The two passwords do not match.")
        return value


class LoginIn(Strict):
    username: ShortText
    password: Annotated[str, StringConstraints(max_length=128)]


class NewListingIn(Strict):
    # The entity tier owns the limits (lengths, price range); these only bound the size.
    title: Annotated[str, StringConstraints(max_length=1000)]
    description: Annotated[str, StringConstraints(max_length=20000)] = ""
    price: Decimal


class SearchQuery(Schema):
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    page: Annotated[int, Field(ge=1, le=10_000)] = 1


class PageQuery(Schema):
    page: Annotated[int, Field(ge=1, le=10_000)] = 1


class HomeOut(Schema):
    newest: list[ListingOut]
    popular: list[ListingOut]


class ListingScreen(Schema):
    listing: ListingOut
    seller: UserOut
    more_from_seller: list[ListingOut]


class SellerScreen(Schema):
    seller: UserOut
    listings: list[ListingOut]
    count: int
    page: int
    pages: int


class SearchScreen(Schema):
    query: str
    results: list[ListingOut]
    count: int
    page: int
    pages: int
    per_page: int


class Session(Schema):
    token: str
    expires_at: datetime
    user: UserOut


class Me(Schema):
    user: UserOut


class LoggedOut(Schema):
    logged_out: bool


class CreatedListing(Schema):
    listing: ListingOut
