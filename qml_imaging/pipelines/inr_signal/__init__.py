"""Signal (sound) representation with implicit neural representations at a shared parameter budget."""
