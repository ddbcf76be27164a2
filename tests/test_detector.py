"""OneClassDetector on people's own images: inputs as they come, the training-step floor, scikit-learn conventions,
localization through the detector (patch and GradCAM), safe model files, and run-time requirements.
Everything trains with the `smoke` preset on small images, so the file runs in well under a minute."""
import ast, json, pickle, re, subprocess, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from deepocc.data import load_one_class, available
from deepocc.data import as_image_batch
from deepocc.detector import OneClassDetector, DEFAULT_MIN_STEPS, FORMAT_VERSION, FUSED_PIXEL_WEIGHT
from deepocc.pretext import PRETEXTS

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)
SMOKE = dict(preset='smoke', progress=False)

@pytest.fixture(scope='module')
def digits():
    "Real images: scikit-learn's digits, 0 normal, resized to 16 px."
    return load_one_class('digits', 0, size=16)

@pytest.fixture(scope='module')
def fitted(digits):
    return OneClassDetector('rotation', 'kde', image_size=16, **SMOKE).fit(digits.train)

def save_png(a:np.ndarray, path:Path, **kw)->Path:
    Image.fromarray(a).save(path, **kw); return path

@pytest.fixture
def messy_folder(tmp_path, digits):
    "A folder as people have them: mixed sizes, grayscale and colour, 16-bit, palette, an EXIF-rotated JPEG, a hidden file."
    d = tmp_path/'imgs'; d.mkdir()
    ims = [x[0].numpy() for x in digits.train[:12]]
    save_png(ims[0], d/'a_gray.png')
    save_png(np.stack([ims[1]] * 3, -1), d/'b_rgb.png')
    save_png(np.array(Image.fromarray(ims[2]).resize((40, 24))), d/'c_wide.png')                 # non-square
    save_png((ims[3].astype(np.uint16) * 257), d/'d_16bit.png')                                     # I;16
    Image.fromarray(ims[4]).convert('P').save(d/'e_palette.png')
    ex = Image.Exif(); ex[0x0112] = 6
    Image.fromarray(np.stack([ims[5]] * 3, -1)).resize((30, 20)).save(d/'f_exif.jpg', exif=ex.tobytes(), quality=95)
    for i in range(6, 12): save_png(np.array(Image.fromarray(ims[i]).resize((16 + i, 16 + i))), d/f'g{i}.png')
    (d/'._a_gray.png').write_bytes(b'\x00\x05\x16\x07 AppleDouble')
    return d

# ---------------------------------------------------------------- inputs as they come

def test_mixed_folder_fits_and_scores_with_image_size(messy_folder):
    det = OneClassDetector(image_size=16, **SMOKE).fit(messy_folder)
    assert det.input_shape_ == (3, 16, 16)                                  # one colour file makes the batch RGB
    assert det.anomaly_score(messy_folder).shape == (12,)
    files = sorted(messy_folder.glob('[!.]*'))
    assert det.anomaly_score(files[:3]).shape == (3,)                        # a list of files
    pil = [Image.open(f) for f in files]
    np.testing.assert_allclose(det.anomaly_score(pil), det.anomaly_score(messy_folder), rtol=1e-5, atol=1e-5)

def test_mixed_sizes_without_image_size_pick_one_with_a_warning(messy_folder):
    "image_size=None (the default in Python and on the command line) resizes a mixed folder to a size chosen from the data."
    with pytest.warns(UserWarning, match=r'differ in size .*resized to 16×16 .*median'):
        det = OneClassDetector(**SMOKE).fit(messy_folder)
    assert det.input_shape_ == (3, 16, 16) and det.anomaly_score(messy_folder).shape == (12,)
    from deepocc.detector import auto_image_size
    assert auto_image_size([(300, 300)] * 3) == (64, 64) and auto_image_size([(28, 28)] * 3) == (28, 28)
    from deepocc.cli import build_parser
    assert build_parser().parse_args(['fit', str(messy_folder), '-o', 'm.pt']).image_size is None   # the CLI shares the default

def test_image_size_hw_keeps_the_aspect():
    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 255, (12 + i % 3, 20), dtype=np.uint8)) for i in range(24)]
    det = OneClassDetector('cutpaste', 'gde', image_size=(12, 20), **SMOKE).fit(ims)
    assert det.input_shape_ == (1, 12, 20)
    assert det.features(ims[:2]).shape[0] == 2 and det.localize(ims[:3], method='gradcam')[0].shape == (12, 20)
    with pytest.raises(ValueError, match=r"rotates images by quarter turns.*image_size=20"):
        OneClassDetector('rotation', image_size=(12, 20), **SMOKE).fit(ims)

def test_files_are_read_as_viewers_show_them(messy_folder):
    from deepocc.data import read_image
    x16 = read_image(messy_folder/'d_16bit.png')
    assert x16.shape[0] == 1 and int(x16.max()) > 200                      # scaled from 16 bits, not clipped to white
    ref = read_image(messy_folder/'a_gray.png')
    assert read_image(messy_folder/'e_palette.png').shape[0] == 1          # grey palette stays grayscale
    assert tuple(read_image(messy_folder/'f_exif.jpg').shape[1:]) == (30, 20)   # EXIF 6: displayed 30 rows × 20 columns
    assert ref.dtype == torch.uint8

@pytest.mark.parametrize('pretext', sorted(PRETEXTS))
def test_every_pretext_trains_on_non_square_images(pretext):
    ims = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (12, 20), dtype=np.uint8)) for i in range(8)]
    det = OneClassDetector(pretext, 'gde', image_size=16, **SMOKE).fit(ims)
    assert np.isfinite(det.anomaly_score(ims)).all()

def test_on_error_raise_names_the_file_and_skip_warns_once(messy_folder):
    (messy_folder/'z_broken.png').write_bytes(b'\x89PNG truncated')
    (messy_folder/'y_empty.jpg').write_bytes(b'')
    with pytest.raises(OSError, match=r"y_empty\.jpg.*on_error='skip'"): OneClassDetector(image_size=16, **SMOKE).fit(messy_folder)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        det = OneClassDetector(image_size=16, on_error='skip', **SMOKE).fit(messy_folder)
    msgs = [str(x.message) for x in w if 'unreadable' in str(x.message)]
    assert len(msgs) == 1 and 'z_broken.png' in msgs[0] and 'y_empty.jpg' in msgs[0] and 'left out 2' in msgs[0]
    with pytest.warns(UserWarning, match='left out 2'): assert det.anomaly_score(messy_folder).shape == (12,)
    with pytest.raises(ValueError, match='no readable images'), pytest.warns(UserWarning, match='z_broken.png'):
        as_image_batch([messy_folder/'z_broken.png'], on_error='skip')

def test_float_numpy_equals_uint8(fitted, digits):
    u8 = digits.test[:10, 0].numpy()
    np.testing.assert_allclose(fitted.anomaly_score(u8.astype(np.float32) / 255), fitted.anomaly_score(u8), rtol=1e-5, atol=1e-5)

BAD_INPUTS = [  # (input, the error type, a phrase the message must contain)
    (np.zeros((2, 3, 16, 16), np.uint8), ValueError, 'x.transpose(0, 2, 3, 1)'),           # numpy given in torch's layout
    (torch.zeros(2, 16, 16, 3), ValueError, 'x.permute(0, 3, 1, 2)'),                      # tensor given in numpy's layout
    (np.zeros((0, 16, 16), np.float32), ValueError, 'empty'),
    (torch.zeros(0, 1, 16, 16), ValueError, 'empty'),
    ([], ValueError, 'empty list'),
    (np.zeros((2, 16, 16), np.uint16), TypeError, '(x // 257).astype(np.uint8)'),
    (np.full((2, 16, 16), 3.0), ValueError, 'must be in [0,1]'),
    (torch.full((1, 1, 16, 16), float('nan')), ValueError, 'NaN'),
    (np.zeros((16, 16, 3), np.uint8), ValueError, 'x[None]'),
    (torch.zeros(1, 16, 16), ValueError, 'x[None]'),
    (torch.zeros(2, 1, 16, 16, dtype=torch.int32), TypeError, 'uint8'),
    ([Image.new('L', (4, 4)), 3], TypeError, 'a list of images may hold'),
    ({'a': 1}, TypeError, 'cannot read images from a dict'),
    ('/no/such/folder', FileNotFoundError, 'does not exist'),
]

@pytest.mark.parametrize('x,err,phrase', BAD_INPUTS, ids=[f'{i}' for i in range(len(BAD_INPUTS))])
def test_bad_input_gets_a_clear_error(fitted, x, err, phrase):
    with pytest.raises(err) as e: fitted.anomaly_score(x)
    assert phrase in str(e.value), str(e.value)

def test_channel_mismatch_of_a_tensor_is_explained(fitted):
    with pytest.raises(ValueError, match=r'fitted on grayscale .* got RGB .*x.float\(\).mean\(1, keepdim=True\)'):
        fitted.anomaly_score(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))

HINTED = [  # inputs whose error suggests a fix in the idiom of the input's own type
    np.zeros((2, 1, 16, 16), np.uint8), torch.zeros(2, 16, 16, 1), torch.zeros(2, 16, 16, 4, dtype=torch.uint8),
    np.zeros((2, 16, 16), np.uint16), np.full((2, 16, 16), 3.0), torch.full((2, 1, 16, 16), 200.0), np.zeros((16, 16, 3), np.uint8),
    np.zeros((2, 16, 16, 4), np.uint8), np.zeros((16, 16), np.uint8), torch.zeros(1, 16, 16), torch.zeros(5, 16, 16),
    torch.zeros(2, 3, 16, 16, dtype=torch.uint8), torch.rand(2, 3, 16, 16), np.zeros((2, 16, 16, 3), np.float32)]

@pytest.fixture(scope='module')
def fitted_rgb(digits):
    return OneClassDetector('raw_pixels', 'kde', image_size=16).fit(digits.train.expand(-1, 3, -1, -1))

@pytest.mark.parametrize('i', range(len(HINTED)))
@pytest.mark.parametrize('channels', [1, 3])
def test_every_suggested_fix_works(fitted, fitted_rgb, i, channels):
    "Apply the fix an error suggests (in backticks), then the next one, until the images score."
    det, x = (fitted if channels == 1 else fitted_rgb), HINTED[i]
    for _ in range(3):
        try: det.anomaly_score(x); return
        except (ValueError, TypeError) as e:
            fixes = re.findall(r'`([^`]+)`', str(e))
            assert fixes, f'no fix suggested: {e}'
            foreign = ('torch', '.permute', '.expand', '.to(') if isinstance(x, np.ndarray) else ('np.', '.astype', '.transpose')
            assert not any(t in fixes[0] for t in foreign), f"a {type(x).__name__} input got the other library's idiom: {fixes[0]}"
            x = eval(fixes[0], {'np': np, 'torch': torch, 'x': x})
    pytest.fail(f'the suggested fixes did not lead to images that score: {type(x)} {getattr(x, "shape", None)}')

def test_empty_folder_and_subfolder_hint(tmp_path):
    (tmp_path/'sub').mkdir(); save_png(np.zeros((8, 8), np.uint8), tmp_path/'sub'/'x.png')
    with pytest.raises(ValueError, match=r'holds no image files .*subfolders sub'): OneClassDetector(**SMOKE).fit(tmp_path)

# ---------------------------------------------------------------- the training budget

@pytest.fixture
def epoch_preset(monkeypatch):
    "A preset whose rotation budget is in epochs (the `cpu` preset's budgets are in steps), to exercise the floor."
    from deepocc.pretext import PRESETS
    monkeypatch.setitem(PRESETS, 'epochs3', {**PRESETS['cpu'], 'rotation': dict(model=dict(width=2, head_hidden=(4,), head_out=4),
                                                                             train=dict(epochs=3, batch_size=16, lr=0.01))})
    return 'epochs3'

def test_cpu_budgets_are_steps():
    "Small and large training sets get the same number of optimizer steps from the cpu preset."
    assert OneClassDetector('rotation').training_config(500).steps == OneClassDetector('rotation').training_config(10_000).steps == 320
    assert OneClassDetector('cutpaste_3way').training_config(10).steps == 600

def test_step_floor_applies_to_epoch_budgets_only(epoch_preset):
    assert OneClassDetector('rotation', preset=epoch_preset).training_config(500).steps == DEFAULT_MIN_STEPS   # 3 × 31 < 250
    assert OneClassDetector('rotation', preset=epoch_preset).training_config(10_000).steps is None          # 3 × 625 ≥ 250
    assert OneClassDetector('rotation', preset=epoch_preset, min_steps=100).training_config(500).steps == 100  # 93 < 100
    for kw in (dict(epochs=3), dict(steps=7), dict(min_steps=None), dict(min_steps=0)):
        assert OneClassDetector('rotation', preset=epoch_preset, **kw).training_config(500).steps in (None, 7)

def test_step_floor_is_what_fit_trains(digits, epoch_preset):
    det = OneClassDetector('rotation', 'kde', preset=epoch_preset, image_size=8, min_steps=6, calibration=0, progress=False, log_every=1).fit(digits.train[:32])
    assert det.history_[-1]['step'] == 6 and det.train_config_.steps is None   # 3 epochs × 2 steps = 6 ≥ 6: the epochs stand
    det = det.set_params(min_steps=9).fit(digits.train[:32])
    assert det.history_[-1]['step'] == 9 == det.train_config_.steps         # 6 < 9: raised to the floor

# ---------------------------------------------------------------- scikit-learn conventions

def test_clone_params_and_fit_returns_self(digits):
    det = OneClassDetector('rotation', 'ocsvm', head_params=dict(nu=0.3), width=2, **SMOKE)
    c = clone(det)
    assert c is not det and c.get_params() == det.get_params() and c.get_params()['width'] == 2
    assert det.fit(digits.train, y=np.zeros(len(digits.train))) is det
    assert det.head_.nu == 0.3
    assert not hasattr(clone(det), 'offset_')
    det.set_params(head_params=dict(gamma=2.0), head='kde')
    assert det.fit(digits.train).head_.gamma_ == 2.0

@pytest.mark.parametrize('head,params,attr,value', [('ocsvm', dict(nu=0.1), 'nu', 0.1), ('kde', dict(gamma=3.0), 'gamma_', 3.0),
                                                   ('gde', dict(shrinkage=0.2), 'shrinkage_', 0.2)])
def test_head_params_reach_the_head(digits, head, params, attr, value):
    assert getattr(OneClassDetector('raw_pixels', head, head_params=params).fit(digits.train).head_, attr) == value

def test_unknown_options_fail_when_fit_starts(digits):
    with pytest.raises(TypeError, match='unknown head_params nuu'): OneClassDetector('raw_pixels', 'ocsvm', head_params=dict(nuu=1)).fit(digits.train)
    with pytest.raises(TypeError, match='unknown setting'): OneClassDetector(epochz=3).fit(digits.train)
    with pytest.raises(ValueError, match='image_size'): OneClassDetector(image_size=2.5).fit(digits.train)

@pytest.mark.parametrize('method', ['anomaly_score', 'score_samples', 'decision_function', 'predict', 'features', 'localize', 'save'])
def test_not_fitted_error(method, digits, tmp_path):
    with pytest.raises(NotFittedError, match='not fitted'):
        getattr(OneClassDetector(), method)(tmp_path/'d.pt' if method == 'save' else digits.test)

def test_pipeline_and_grid_search(digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.model_selection import GridSearchCV
    pipe = make_pipeline(FunctionTransformer(lambda x: x.float() / 255), OneClassDetector('raw_pixels', 'kde')).fit(digits.train)
    ref = OneClassDetector('raw_pixels', 'kde').fit(digits.train)
    np.testing.assert_allclose(pipe.score_samples(digits.test), ref.score_samples(digits.test), rtol=1e-5)
    assert set(np.unique(pipe.predict(digits.test))) <= {-1, 1}
    pipe.set_params(oneclassdetector__head='gde')
    assert pipe.fit(digits.train)[-1].head_.__class__.__name__ == 'GaussianDensityHead'
    scorer = lambda est, X, y=None: float(np.mean(est.predict(X) == 1))
    gs = GridSearchCV(OneClassDetector('raw_pixels'), {'head': ['kde', 'knn']}, scoring=scorer, cv=2).fit(digits.train.numpy()[:, 0])
    assert gs.best_params_['head'] in ('kde', 'knn')

# scikit-learn's own checks. The detector declares its input tags (image batches: `two_d_array=False`), so
# `check_estimator` runs the checks that apply to such an estimator and skips every check that feeds a 2-D table (it says so
# with a SkipTestWarning). The API checks that need no table are called by name as well; `test_image_analogues_of_the_tabular_checks`
# tests on images what the tabular checks test on tables.
API_CHECKS = ('check_get_params_invariance', 'check_set_params', 'check_no_attributes_set_in_init', 'check_parameters_default_constructible',
              'check_estimators_unfitted', 'check_do_not_raise_errors_in_init_or_set_params', 'check_outlier_contamination',
              'check_fit1d', 'check_mixin_order', 'check_estimator_repr', 'check_estimator_cloneable', 'check_valid_tag_types',
              'check_estimator_tags_renamed')

def test_sklearn_tags_and_checks():
    from sklearn.utils import get_tags
    from sklearn.utils import estimator_checks as ec
    tags = get_tags(OneClassDetector())
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array and not tags.target_tags.required
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        res = ec.check_estimator(OneClassDetector('rotation', 'kde', **SMOKE), on_fail=None)
    assert res and all(r['status'] == 'passed' for r in res), [(r['check_name'], r['status']) for r in res]
    assert any("Can't test estimator" in str(w.message) for w in caught)    # the tabular checks: skipped, and said so
    for name in API_CHECKS:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            getattr(ec, name)('OneClassDetector', OneClassDetector('rotation', 'kde', **SMOKE))

def test_set_params_after_fit_unfits(fitted, tmp_path):
    det = clone(fitted).fit(fitted_train_images())
    assert hasattr(det, 'offset_')
    det.set_params(head='gde')
    with pytest.raises(NotFittedError): det.anomaly_score(fitted_train_images()[:2])
    with pytest.raises(NotFittedError): det.save(tmp_path/'d.pt')          # a file can never name one head and hold another
    assert det.fit(fitted_train_images()).head_.__class__.__name__ == 'GaussianDensityHead'

def fitted_train_images(): return load_one_class('digits', 0, size=16).train

def test_threshold_calibrated_on_held_out_normals():
    "At contamination=0.1 about 10 % of new normal images are flagged; a 1-NN head's in-sample scores (each image its own neighbour) would flag far more."
    if not available('fmnist'): pytest.fail('Fashion-MNIST is not on this machine (tools/setup_env.sh installs it)')
    d = load_one_class('fmnist', 'trouser')
    new_normal = d.test[d.test_labels == 0]
    rate = lambda det: float(np.mean(det.predict(new_normal) == -1))
    cal = OneClassDetector('raw_pixels', 'knn', contamination=0.1, seed=0).fit(d.train[:3000])
    insample = OneClassDetector('raw_pixels', 'knn', contamination=0.1, calibration=0).fit(d.train[:3000])
    assert len(cal.calibration_scores_) == 600 and insample.calibration_scores_ is None
    assert abs(rate(cal) - 0.1) < 0.04, rate(cal)
    assert rate(insample) > rate(cal) + 0.05, (rate(insample), rate(cal))

def test_image_analogues_of_the_tabular_checks(digits, fitted):
    X = digits.test[:24]
    s = fitted.anomaly_score(X)
    d0 = {k: v for k, v in vars(fitted).items()}
    fitted.predict(X); fitted.decision_function(X)
    assert vars(fitted).keys() == d0.keys() and all(vars(fitted)[k] is d0[k] for k in d0)     # dict unchanged by predicting
    perm = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(fitted.anomaly_score(X[perm]), s[perm], rtol=1e-5, atol=1e-6)  # sample order invariance
    np.testing.assert_allclose(np.concatenate([fitted.anomaly_score(X[:7]), fitted.anomaly_score(X[7:])]), s, rtol=1e-5, atol=1e-6)  # subsets
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(back.anomaly_score(X), s, rtol=1e-6)                          # pickle
    again = clone(fitted).fit(digits.train)
    np.testing.assert_allclose(again.anomaly_score(X), s, rtol=1e-5, atol=1e-6)                # fit is idempotent
    arr = digits.test[:24, 0].numpy().copy(); arr.setflags(write=False)
    np.testing.assert_allclose(fitted.anomaly_score(arr), s, rtol=1e-5, atol=1e-6)            # read-only input
    np.testing.assert_allclose(fitted.anomaly_score(np.asfortranarray(arr)), s, rtol=1e-5, atol=1e-6)   # F-contiguous
    assert OneClassDetector('raw_pixels').fit(digits.train[:1]).predict(digits.train[:1]).shape == (1,)  # one sample

# ---------------------------------------------------------------- localization

def test_localize_without_extra_imports(tmp_path):
    code = """
import sys, torch
from deepocc.detector import OneClassDetector
x = torch.rand(12, 1, 24, 24)
det = OneClassDetector('cutpaste_3way', 'gde', preset='smoke', localizer='patch', localizer_params=dict(patch=8, stride=4), progress=False).fit(x)
print(det.localize(x[:2]).shape, det.localize(x[:2], method='gradcam').shape)
"""
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['(2,', '24,', '24)', '(2,', '24,', '24)']

def test_maps_at_each_inputs_own_resolution_and_feature(digits):
    x = digits.train
    det = OneClassDetector('rotation', 'kde', image_size=16, localizer='patch', localizer_params=dict(patch=8, stride=4), **SMOKE).fit(x)
    wide = [Image.fromarray(x[i, 0].numpy()).resize((30, 18)) for i in range(3)]
    assert det.localize(wide).shape == (3, 18, 30)
    mixed = det.localize(wide[:1] + [Image.fromarray(x[0, 0].numpy()).resize((9, 13))])
    assert isinstance(mixed, list) and [m.shape for m in mixed] == [(18, 30), (13, 9)]
    emb = clone(det).set_params(feature='embed').fit(x)
    assert emb.localizer_.feature_fn.tap == 'embed' and det.localizer_.feature_fn.tap == 'pool'
    assert not np.allclose(emb.localize(wide), det.localize(wide))
    with pytest.raises(ValueError, match="GradCAM explains a CutPaste"): det.localize(wide, method='gradcam')

def test_gradcam_route_through_the_detector(digits):
    det = OneClassDetector('cutpaste', 'gde', image_size=16, **SMOKE).fit(digits.train)
    m = det.localize(digits.test[:4])                                       # no patch localizer: GradCAM by default
    assert m.shape == (4, 16, 16) and np.isfinite(m).all() and (m >= 0).all()
    with pytest.raises(NotFittedError, match="localizer='patch'"): det.localize(digits.test[:4], method='patch')

# ---------------------------------------------------------------- model files

@pytest.mark.parametrize('pretext,head', [('rotation', 'builtin'), ('rotation', 'kde'), ('contrastive_da', 'ocsvm'),
                                          ('cutpaste_3way', 'gde'), ('raw_pixels', 'knn'), ('raw_pixels', 'ocsvm_linear')])
def test_save_load_round_trip(digits, tmp_path, pretext, head):
    det = OneClassDetector(pretext, head, image_size=16, **SMOKE, **({'localizer': 'patch'} if pretext == 'cutpaste_3way' else {})).fit(digits.train)
    det.save(tmp_path/'d.pt')
    back = OneClassDetector.load(tmp_path/'d.pt')
    np.testing.assert_allclose(back.anomaly_score(digits.test), det.anomaly_score(digits.test), rtol=1e-5, atol=1e-6)
    assert back.get_params() == det.get_params() and back.threshold_ == det.threshold_
    if det.localizer_ is not None: np.testing.assert_allclose(back.localize(digits.test[:3]), det.localize(digits.test[:3]), rtol=1e-5, atol=1e-6)

def test_load_rebuilds_from_the_file_not_the_preset(digits, tmp_path, monkeypatch):
    det = OneClassDetector('rotation', 'kde', **SMOKE).fit(digits.train)
    det.save(tmp_path/'d.pt')
    import deepocc.pretext as P
    monkeypatch.setitem(P.PRESETS['smoke'], 'rotation', dict(model=dict(width=8, head_hidden=(32,), head_out=8), train=dict(steps=1)))
    np.testing.assert_allclose(OneClassDetector.load(tmp_path/'d.pt').anomaly_score(digits.test), det.anomaly_score(digits.test), rtol=1e-5)

class Payload:
    "Unpickling it writes a file: the kind of code a malicious model file runs."
    def __init__(self, target): self.target = str(target)
    def __reduce__(self): return (exec, (f"open({self.target!r}, 'w').write('the payload ran')",))

@pytest.mark.parametrize('writer', ['torch', 'pickle'])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, writer):
    marker, path = tmp_path/'ran.txt', tmp_path/'evil.pt'
    state = dict(format='deepocc.OneClassDetector', format_version=FORMAT_VERSION, meta='{}', tensors={}, extra=Payload(marker))
    if writer == 'torch': torch.save(state, path)
    else: path.write_bytes(pickle.dumps(state))
    with pytest.raises(ValueError, match=r'pickled Python object.*never loads') as e: OneClassDetector.load(path)
    if writer == 'torch': assert '(exec)' in str(e.value)                     # names what the pickle wanted to call
    assert not marker.exists()
    pickle.loads(path.read_bytes()) if writer == 'pickle' else torch.load(path, weights_only=False)   # the payload is real:
    assert marker.read_text() == 'the payload ran'                                                   # plain unpickling runs it

def test_format_versions(digits, tmp_path):
    det = OneClassDetector('raw_pixels', 'kde').fit(digits.train); det.save(tmp_path/'d.pt')
    st = torch.load(tmp_path/'d.pt', weights_only=True)
    meta = json.loads(st['meta']); meta['deepocc_version'] = '9.9.9'; st['meta'] = json.dumps(meta)
    torch.save(st, tmp_path/'other_version.pt')                            # another library version, same format: loads
    np.testing.assert_allclose(OneClassDetector.load(tmp_path/'other_version.pt').anomaly_score(digits.test), det.anomaly_score(digits.test))
    st['format_version'] = FORMAT_VERSION + 1; torch.save(st, tmp_path/'newer.pt')
    with pytest.raises(ValueError, match=rf'format {FORMAT_VERSION + 1} by deepocc 9.9.9.*reads format {FORMAT_VERSION}: upgrade deepocc'):
        OneClassDetector.load(tmp_path/'newer.pt')
    st['format_version'] = FORMAT_VERSION                                   # only the JSON part says another format: refused
    st['meta'] = json.dumps({**meta, 'format_version': FORMAT_VERSION + 1}); torch.save(st, tmp_path/'json_newer.pt')
    with pytest.raises(ValueError, match=rf'its JSON part is of format {FORMAT_VERSION + 1}'): OneClassDetector.load(tmp_path/'json_newer.pt')
    from deepocc.heads import make_head                                      # a format-1 file (deepocc 0.1.0) pickled its head
    torch.save(dict(format='deepocc.OneClassDetector', format_version=1, head=make_head('kde')), tmp_path/'v1.pt')
    with pytest.raises(ValueError, match=r'KernelDensityHead.*format-1 files'): OneClassDetector.load(tmp_path/'v1.pt')
    (tmp_path/'junk.pt').write_bytes(b'\x00' * 64)
    with pytest.raises(ValueError, match='is not a deepocc detector file'): OneClassDetector.load(tmp_path/'junk.pt')
    with pytest.raises(FileNotFoundError, match='does not exist'): OneClassDetector.load(tmp_path/'missing.pt')

def test_save_is_atomic(digits, tmp_path, monkeypatch):
    det = OneClassDetector('raw_pixels', 'kde').fit(digits.train); det.save(tmp_path/'d.pt')
    before = (tmp_path/'d.pt').read_bytes()
    monkeypatch.setattr(torch, 'save', lambda *a, **k: (_ for _ in ()).throw(OSError('disk full')))
    with pytest.raises(OSError, match='disk full'): det.save(tmp_path/'d.pt')
    assert (tmp_path/'d.pt').read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['d.pt']

# ---------------------------------------------------------------- run-time requirements

IMPORT_TO_DIST = {'PIL': 'pillow', 'sklearn': 'scikit-learn', 'yaml': 'pyyaml'}
OPTIONAL = {'ray': "the 'ray' extra (deepocc.engines imports it inside the Ray engine)",
            'elpv_dataset': 'the ELPV loader, which names the package when it is missing'}

def test_every_runtime_import_is_a_runtime_requirement():
    import configparser
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    reqs = {re.split(r'[<>=!~ \[]', r)[0].lower() for r in cfg['DEFAULT']['requirements'].split()}
    stdlib = set(sys.stdlib_module_names)
    top, lazy = set(), set()
    for f in sorted((ROOT/'deepocc').glob('*.py')):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and node.level):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for n in names:
                    root = n.split('.')[0]
                    if root in stdlib or root == 'deepocc': continue
                    (top if node.col_offset == 0 else lazy).add(root)
    missing = sorted(m for m in top | lazy if IMPORT_TO_DIST.get(m, m).lower() not in reqs and m not in OPTIONAL)
    assert not missing, f'imported by deepocc but not in settings.ini requirements: {missing}'
    assert not top & set(OPTIONAL), 'optional packages must be imported where they are used, not at module level'

def test_fused_feature_blocks_weigh_as_set(digits, tmp_path):
    "'pool+pixels' (the default): the network block has spread 1 over the fitting images, the pixel block FUSED_PIXEL_WEIGHT; kept in the file; a file without it is refused."
    det = OneClassDetector(image_size=16, calibration=0, **SMOKE).fit(digits.train)
    assert det.feature == 'pool+pixels' and len(det.block_scale_) == 2
    f = det.features(digits.train)
    n_pool = f.shape[1] - 16 * 16
    spread = [float(b.var(0).sum().sqrt()) for b in (f[:, :n_pool], f[:, n_pool:])]
    assert abs(spread[0] - 1) < 1e-3 and abs(spread[1] - FUSED_PIXEL_WEIGHT) < 1e-3 * FUSED_PIXEL_WEIGHT, spread
    det.save(tmp_path/'d.pt'); assert OneClassDetector.load(tmp_path/'d.pt').block_scale_ == det.block_scale_
    st = torch.load(tmp_path/'d.pt', weights_only=True)
    meta = json.loads(st['meta']); meta.pop('block_scale'); st['meta'] = json.dumps(meta); torch.save(st, tmp_path/'old.pt')
    with pytest.raises(ValueError, match='without its block scales'): OneClassDetector.load(tmp_path/'old.pt')
