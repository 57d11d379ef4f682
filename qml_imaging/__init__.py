"""qml-imaging."""
