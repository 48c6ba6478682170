"""The sign-in and users routes, without trailing slashes."""

from django.urls import path

from .views import CurrentUserView, PasswordView, TokenView, UserListView

urlpatterns = [
    path("auth/token", TokenView.as_view(), name="token"),
    path("users", UserListView.as_view(), name="users"),
    path("users/me", CurrentUserView.as_view(), name="current-user"),
    path("users/me/password", PasswordView.as_view(), name="password"),
]
