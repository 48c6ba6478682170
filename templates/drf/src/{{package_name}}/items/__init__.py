"""The items app: model, serializers, ViewSet and migrations of the items API."""
