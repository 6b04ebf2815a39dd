"""Every SQL statement of ingest, one module per aggregate. Callers own the transaction:
nothing here commits (``services/ingest/stores.py`` holds the units of work)."""

from services.ingest.repository.deliveries import DeliveryRepository, stored_delivery_id
from services.ingest.repository.write_keys import WriteKey, WriteKeyRepository

__all__ = ["DeliveryRepository", "WriteKey", "WriteKeyRepository", "stored_delivery_id"]
