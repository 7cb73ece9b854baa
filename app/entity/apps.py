from django.apps import AppConfig


class EntityConfig(AppConfig):
    name = "entity"
