"""Request and response schemas of the entity API: validation happens here, before a service
runs, and the same classes publish the OpenAPI document."""
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import Field, StringConstraints, field_validator

from .models import MAX_PRICE, USERNAME_PATTERN

Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=30,
                                            pattern=USERNAME_PATTERN)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=120)]
Description = Annotated[str, StringConstraints(max_length=5000)]
Price = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, max_digits=9, decimal_places=2)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=128)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)]
Bio = Annotated[str, StringConstraints(max_length=500)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]
Status = Literal["active", "sold", "withdrawn"]
Token = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Id = Annotated[int, Field(gt=0, lt=2**63)]


def _check_email(value):
    if value is None:
        return value
    try:
        validate_email(value)
    except DjangoValidationError as error:
        raise ValueError("Enter a valid email address.") from error
    return value


class Strict(Schema):
    model_config = {"extra": "forbid"}  # a misspelt field is an error, not silently ignored


class UserIn(Strict):
    username: Username
    email: Email
    password: Password
    display_name: DisplayName = ""
    bio: Bio = ""
    _email = field_validator("email")(_check_email)


class UserPatch(Strict):
    email: Email | None = None
    password: Password | None = None
    display_name: DisplayName | None = None
    bio: Bio | None = None
    _email = field_validator("email")(_check_email)


class UserOut(Schema):
    id: int
    username: str
    email: str
    display_name: str
    bio: str
    date_joined: datetime


class SellerBrief(Schema):
    id: int
    username: str
    display_name: str


class ListingIn(Strict):
    seller_id: Id
    title: Title
    description: Description = ""
    price: Price
    status: Status = "active"


class ListingPatch(Strict):
    title: Title | None = None
    description: Description | None = None
    price: Price | None = None
    status: Status | None = None


class ListingOut(Schema):
    id: int
    title: str
    description: str
    price: Decimal
    status: str
    view_count: int
    created_at: datetime
    updated_at: datetime
    seller: SellerBrief


class ViewsOut(Schema):
    id: int
    view_count: int


class Credentials(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=150)]
    password: Password


class TokenIn(Strict):
    token: Token


class AuthenticatorOut(Schema):
    id: int
    user_id: int
    created_at: datetime
    expires_at: datetime
    revoked: bool


class IssuedAuthenticator(Schema):
    token: str
    authenticator: AuthenticatorOut
    user: UserOut


class VerifiedAuthenticator(Schema):
    authenticator: AuthenticatorOut
    user: UserOut


class Deleted(Schema):
    deleted: int


class Revoked(Schema):
    revoked: bool


def page_of(item_schema):
    return type(f"{item_schema.__name__}Page", (Schema,), {
        "__annotations__": {"items": list[item_schema], "count": int, "limit": int, "offset": int},
    })


UserPage = page_of(UserOut)
ListingPage = page_of(ListingOut)
AuthenticatorPage = page_of(AuthenticatorOut)


class PageQuery(Schema):
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class ListingQuery(PageQuery):
    order: Literal["newest", "popular", "price_asc", "price_desc"] = "newest"
    seller_id: Id | None = None
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    status: Literal["active", "sold", "withdrawn", "any"] = "active"


class AuthenticatorQuery(PageQuery):
    user_id: Id | None = None
