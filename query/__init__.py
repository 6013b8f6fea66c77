"""Logs Insights: grammar, nodes, parse, compile to DuckDB SQL, and the query service."""
