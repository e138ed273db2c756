"""A report job from request to notification: its message, its state in the ledger, accepting it,
the consumer that runs it, the reconciler that re-publishes what a queue lost, and the autoscaling
policy that sizes the consumers."""
