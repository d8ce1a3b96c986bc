from mmsent.cli import app

app(prog_name="mmsent")
