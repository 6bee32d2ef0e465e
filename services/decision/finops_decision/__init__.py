"""The decision service: recommendations become decisions approved under the persona policy."""
