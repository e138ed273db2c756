"""Spreadsheet programs and libraries nobody on the project wrote, each reading an .xlsx into the
same plain form (``sheets.Sheets``) so the reader matrix can hold them to SPEC §5 cell for cell."""
