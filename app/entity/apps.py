from django.apps import AppConfig


class EntityConfig(AppConfig):
    name = "entity"

    def ready(self):
        # Every write of a user or listing invalidates the cached pages that show it.
        from . import invalidation

        invalidation.connect()
