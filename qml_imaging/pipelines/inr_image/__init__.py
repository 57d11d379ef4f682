"""Image representation with implicit neural representations at a shared parameter budget."""
