from django.urls import path

from . import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("search", views.search, name="search"),
    path("listings/new", views.listing_new, name="listing_new"),
    path("listings/<int:listing_id>", views.listing, name="listing"),
    path("sellers/<int:seller_id>", views.seller, name="seller"),
    path("signup", views.signup, name="signup"),
    path("login", views.login, name="login"),
    path("logout", views.logout, name="logout"),
]
