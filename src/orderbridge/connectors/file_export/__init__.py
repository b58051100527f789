"""File export: orders as CSV or XML files in a drop directory a package imports, and what the
package did with each file read back (``docs/connectors/file-export.md``)."""
