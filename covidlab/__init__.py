"""covidlab: the helper package of the course "Rebuilding COVID-19 chest X-ray classifiers".

One module, one job:

- ``config``    where data lives, Colab detection
- ``data``      manifests, the tf.data image loader, patient-aware splits, synthetic images
- ``sources``   parsers for the public sources (Cohen, Kermany, Figure1, Actualmed)
- ``download``  checksummed downloads and safe archive extraction
- ``recipes``   each paper's dataset rebuilt from the sources
- ``models``    the backbone registry and the transfer-learning classifier builder
- ``train``     training, hold-out and k-fold evaluation, batch-norm recalibration
- ``jobs``      long runs as (paper, model, fold) jobs: resumable, shardable (``covidlab run``)
- ``results``   result files of runs made elsewhere (GPU) and recorded demo runs
- ``profiles``  smoke / demo / paper run settings
- ``cost``      what a run costs before you press run
- ``metrics``   confusion-matrix metrics, one-vs-rest reduction, Wilson intervals
- ``viz``       figures
- ``explain``   Grad-CAM class activation maps
- ``papers``    each paper's settings and reported results, as data
"""

__version__ = "0.1.0"
