"""Small display helpers the notebooks share, so a notebook cell stays one line of intent."""
import html

from IPython.display import HTML, Image, Markdown, display

from .rundir import RUNS_DIR, RunDir, new_run_id


def open_run(run_dir=""):
    """The run a notebook writes into: the one `make report` passes, or, when the notebook is
    opened by hand with an empty parameter, a new `interactive-<time>` run."""
    return RunDir(run_dir or RUNS_DIR / f"interactive-{new_run_id()}")


def md(text):
    display(Markdown(text))


def code_block(text, language=""):
    """Text shown verbatim (sample output, a config file), escaped."""
    display(HTML(f'<pre class="sample"><code class="language-{language}">'
                 f"{html.escape(text.rstrip())}</code></pre>"))


def figure(path, caption):
    """A saved figure with its one-line caption."""
    display(Image(filename=str(path)))
    md(f"*{caption}*")


def tail(text, lines=25):
    return "\n".join(text.rstrip().splitlines()[-lines:])
