"""Everything that runs a report job: queue, warehouse, rendering, storage, notification."""
