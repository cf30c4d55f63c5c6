"""Augment: tune the five random operations on real images and see every view change at once."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import lab, preview, sharing, state
from dashboard.difficulty import meter_tab
from dashboard.errors import attempt
from dashboard.routing import ensure_routed
from simclr_core.config import PRESETS, AugmentationConfig

ensure_routed()

ss = st.session_state


def load_preset() -> None:
    state.set_augmentation(PRESETS[ss["aug.preset"]])


def new_sample() -> None:
    ss["keep.aug_seed"] = int(ss["keep.aug_seed"]) + 1


def other_images() -> None:
    ss["keep.aug_pick"] = int(ss["keep.aug_pick"]) + 1


def load_setup_file() -> None:
    upload = ss.get("upload.setup")
    if upload is None:
        return
    try:
        data = json.loads(upload.getvalue().decode("utf-8"))
        if isinstance(data, dict) and not set(data) & {"aug", "train", "train_aug"}:
            data = {"aug": data}  # a bare AugmentationConfig JSON, as the download below writes
        sharing.apply_setup(data)
        ss["_notice"] = f"Loaded {upload.name}."
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        ss["_notice_error"] = f"{upload.name} is not a SimCLR Studio setup or augmentation JSON: {err}"


st.title("Augmentations")
st.caption(
    "SimCLR learns what stays the same across two random views of an image. "
    "Every control below redraws the grid; the same engine augments batches during training."
)

controls, view = st.columns([1, 2.2], gap="large")

with controls:
    st.selectbox(
        "Preset",
        list(PRESETS),
        key="aug.preset",
        on_change=load_preset,
        help="tutorial: the seed's values · simclr: the paper's stronger colour jitter · "
        "baseline: the supervised baseline's mild transforms · none: resize only",
    )
    c1, c2 = st.columns([1, 1.1], vertical_alignment="bottom")
    c1.number_input("Seed", min_value=0, step=1, key="keep.aug_seed", help="Same seed, same views.")
    c2.button("New sample", on_click=new_sample, icon=":material/casino:", width="stretch")

    with st.expander("Random resized crop", expanded=True):
        st.number_input("Output size (px)", min_value=8, max_value=512, step=8, key="aug.crop_size")
        st.slider(
            "Area fraction (scale)",
            0.01,
            1.0,
            step=0.01,
            key="aug.crop_scale",
            help="Fraction of the image area each crop covers before resizing.",
        )
        st.slider("Aspect ratio (w/h)", 0.2, 5.0, step=0.01, key="aug.crop_ratio")
    with st.expander("Horizontal flip"):
        st.slider("p(flip)", 0.0, 1.0, step=0.05, key="aug.flip_p")
    with st.expander("Colour jitter", expanded=True):
        st.slider("p(jitter)", 0.0, 1.0, step=0.05, key="aug.jitter_p")
        st.slider("Brightness", 0.0, 2.0, step=0.05, key="aug.jitter_brightness")
        st.slider("Contrast", 0.0, 2.0, step=0.05, key="aug.jitter_contrast")
        st.slider("Saturation", 0.0, 2.0, step=0.05, key="aug.jitter_saturation")
        st.slider("Hue", 0.0, 0.5, step=0.01, key="aug.jitter_hue")
    with st.expander("Grayscale"):
        st.slider("p(grayscale)", 0.0, 1.0, step=0.05, key="aug.grayscale_p")
    with st.expander("Gaussian blur"):
        st.slider("p(blur)", 0.0, 1.0, step=0.05, key="aug.blur_p")
        st.number_input("Kernel size (odd)", min_value=1, max_value=63, step=2, key="aug.blur_kernel")
        st.slider("Sigma range", 0.01, 10.0, step=0.01, key="aug.blur_sigma")
    with st.expander("Normalisation"):
        st.text_input("Mean (R, G, B)", key="aug.mean")
        st.text_input("Std (R, G, B)", key="aug.std")

    with st.expander("Source images"):
        st.radio("Images from", ["Dataset", "Upload"], key="keep.aug_source", horizontal=True)
        if ss["keep.aug_source"] == "Dataset":
            st.caption(f"Dataset: `{ss.get('data_spec')}` (change it in the sidebar)")
            st.select_slider("Load at (px)", [32, 64, 96, 128, 160, 224], key="keep.aug_src_size")
            st.button("Other images", on_click=other_images, icon=":material/shuffle:")
        else:
            st.file_uploader(
                "Images",
                type=preview.upload_types(),
                accept_multiple_files=True,
                key="upload.aug_images",
            )
        st.slider("Images", 1, 12, key="keep.aug_images")
        st.slider("Views per image", 2, 6, key="keep.aug_views")

cfg: AugmentationConfig | None = attempt("use these settings", state.current_augmentation)
images = preview.preview_images(
    ss["keep.aug_source"], int(ss["keep.aug_images"]), int(ss["keep.aug_src_size"]), int(ss["keep.aug_pick"])
)

with view:
    grid_tab, steps_tab, difficulty_tab, export_tab = st.tabs(
        ["Views", "Step through", "Difficulty", "Export & share"], key="nav.aug_tab", bind="query-params"
    )
    with grid_tab:
        if cfg is not None and images is not None:
            grid = preview.views_grid(images, cfg, int(ss["keep.aug_views"]), int(ss["keep.aug_seed"]))
            if grid is not None:
                st.image(
                    grid,
                    width="stretch",
                    output_format="PNG",
                    caption=f"{images.shape[0]} images × {ss['keep.aug_views']} views, seed "
                    f"{ss['keep.aug_seed']}: the views of one image sit side by side",
                )
        elif images is None:
            st.info("No images to show yet: pick a dataset in the sidebar or upload images.", icon=":material/image:")

    with steps_tab:
        if cfg is not None and images is not None:
            if int(ss.get("step_image") or 0) >= images.shape[0]:
                ss["step_image"] = 0
            idx = st.slider("Image", 0, images.shape[0] - 1, key="step_image") if images.shape[0] > 1 else 0
            stages = preview.step_through(images[idx], cfg, seed=int(ss["keep.aug_seed"]) * 1000 + idx)
            if stages:
                for col, (name, tile, note) in zip(st.columns(len(stages)), stages, strict=True):
                    col.image(tile, caption=name, width="stretch")
                    col.caption(note)

    with difficulty_tab:
        meter_tab(cfg)

    with export_tab:
        if cfg is not None:
            text = cfg.to_json()
            b1, b2 = st.columns(2)
            b1.download_button(
                "Download augmentation JSON",
                text,
                file_name="augmentation.json",
                mime="application/json",
                icon=":material/download:",
                width="stretch",
            )
            if b2.button("Use for training", type="primary", icon=":material/model_training:", width="stretch"):
                state.use_for_training(cfg)
                st.success("The Train page will use these augmentations.", icon=":material/check:")
            st.markdown("**Python**")
            st.code(preview.python_snippet(cfg), language="python", wrap_lines=True)
            st.markdown("**Share the whole setup** (augmentations and training settings)")
            link = attempt("build the share link", sharing.share_link_query)
            if link is not None:
                st.code((st.context.url or "").split("?")[0] + link, language=None, wrap_lines=True)
                st.caption("Anyone opening this link sees the same settings.")
                setup = attempt("export the setup", sharing.setup_dict)
                if setup is not None:
                    st.download_button(
                        "Download setup JSON",
                        json.dumps(setup, indent=2),
                        file_name="setup.json",
                        mime="application/json",
                        icon=":material/download:",
                    )
            st.file_uploader(
                "Load a setup or augmentation JSON", type=["json"], key="upload.setup", on_change=load_setup_file
            )

st.divider()
st.header("Augmentation lab", anchor=False)
st.caption("What do these operations do to the representation? Short fast-recipe runs, scored by kNN, one at a time.")
lab.settings()
grid_lab, try_lab = st.tabs(["Ablation grid", "Try these augmentations"], key="nav.lab_tab", bind="query-params")
with grid_lab:
    lab.ablation_lab()
with try_lab:
    lab.try_augmentations(cfg)
