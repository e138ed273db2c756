"""A minimal, fast SpreadsheetML writer: Arrow columns → sheet XML → deflate → one .xlsx zip.

Split so that the expensive part (``rows.render_rows`` + ``deflate.deflate_part``) runs on many
actors, and the cheap part (``package.write_xlsx``) stitches their output without re-compressing.
"""
