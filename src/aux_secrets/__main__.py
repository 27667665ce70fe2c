from aux_secrets.cli.main import run

run()
