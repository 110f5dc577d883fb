"""What the operator reads: tables, JSON documents, live views, the HTML page."""
