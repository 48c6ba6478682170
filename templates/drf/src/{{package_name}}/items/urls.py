"""The items routes: /api/items and /api/items/{item_id}, without trailing slashes."""

from rest_framework.routers import SimpleRouter

from .views import ItemViewSet

router = SimpleRouter(trailing_slash=False)
router.register("items", ItemViewSet, basename="item")

urlpatterns = router.urls
