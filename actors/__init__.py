"""Everything that runs a report job: the job lifecycle (``job/``), the report (``report/``), the
backends chosen by URL scheme (``queue/``, ``storage/``, ``warehouse/``, ``notify/``), configuration,
observability and process runtime. Nothing here imports :mod:`serve_app`."""
