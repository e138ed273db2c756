"""What the service tells its operators: log lines and Ray metrics."""
