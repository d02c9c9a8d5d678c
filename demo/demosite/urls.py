"""The demo serves no pages: everything happens in ``manage.py rundemo``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
