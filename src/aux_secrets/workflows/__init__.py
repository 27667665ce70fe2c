"""The operator's workflows: resolve a manifest's values, bundle and deliver them to hosts.

This layer sits between the CLI and the adapters: ``cli -> workflows -> adapters -> core``.
"""
