// A drag-to-look 360 viewer inside the Save / Preview 360 Panorama nodes and
// Save 360 Video.
//
// The equirectangular image is a texture; a fragment shader turns each screen
// pixel into a view ray and samples the image at the ray's longitude and
// latitude, so nothing but one quad is drawn.  An image less than half as high
// as wide is the band around the horizon (as the save node's GPano metadata
// says); the rest of the sphere is left dark.  A video (Save 360 Video's WebM)
// plays in a <video> element that is not shown: while it plays, each frame is
// copied into the same texture and drawn on the sphere.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const VIDEO_NODE = "SavePanorama360Video";
const VIEWER_NODES = new Set(["SavePanorama360", "PreviewPanorama360", VIDEO_NODE]);
const VIDEO_FILE = /\.(webm|mp4|mov|mkv|ogv)$/i;
const WIDGET = "panorama_360_viewer";
const FOV = { initial: 90, min: 25, max: 120 };
const MAX_PITCH = 89;

const VERTEX_SHADER = `#version 300 es
in vec2 corner;
out vec2 screen;
void main() {
  screen = corner;
  gl_Position = vec4(corner, 0.0, 1.0);
}`;

// Camera looks along -z; pitch turns about x, then yaw about y.
const FRAGMENT_SHADER = `#version 300 es
precision highp float;
in vec2 screen;
out vec4 color;
uniform sampler2D equirect;
uniform float yaw, pitch, focal, aspect, band;
const float PI = 3.14159265358979;
void main() {
  vec3 ray = normalize(vec3(screen.x * aspect, screen.y, -focal));
  float cp = cos(pitch), sp = sin(pitch), cy = cos(yaw), sy = sin(yaw);
  ray = vec3(ray.x, cp * ray.y - sp * ray.z, sp * ray.y + cp * ray.z);
  ray = vec3(cy * ray.x - sy * ray.z, ray.y, sy * ray.x + cy * ray.z);
  float longitude = atan(ray.x, -ray.z);
  float latitude = asin(clamp(ray.y, -1.0, 1.0));
  vec2 uv = vec2(longitude / (2.0 * PI) + 0.5, 0.5 - latitude / (2.0 * band));
  color = (uv.y < 0.0 || uv.y > 1.0) ? vec4(0.1, 0.1, 0.12, 1.0) : texture(equirect, uv);
}`;

const radians = (degrees) => (degrees * Math.PI) / 180;

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
    throw new Error(`360 viewer shader: ${gl.getShaderInfoLog(shader)}`);
  }
  return shader;
}

function program(gl) {
  const prog = gl.createProgram();
  gl.attachShader(prog, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
  gl.attachShader(prog, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) {
    throw new Error(`360 viewer program: ${gl.getProgramInfoLog(prog)}`);
  }
  return prog;
}

// Fits an image (or a video's current frame) into the GPU's largest texture,
// keeping its aspect ratio.
function textureSource(image, width, height, maxSize) {
  const scale = Math.min(1, maxSize / width, maxSize / height);
  if (scale === 1) return image;
  const canvas = document.createElement("canvas");
  canvas.width = Math.floor(width * scale);
  canvas.height = Math.floor(height * scale);
  canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
  return canvas;
}

class SphereView {
  constructor() {
    this.element = document.createElement("div");
    this.element.className = "panorama-360-viewer";
    Object.assign(this.element.style, {
      position: "relative", width: "100%", height: "100%", minHeight: "160px",
      background: "#1a1a1f", borderRadius: "6px", overflow: "hidden", cursor: "grab", outline: "none",
    });
    // The Vue node UI ("Nodes 2.0") takes wheel events for the graph before they reach a
    // node, except inside a focused element marked so (as the frontend's own 3D viewer is):
    // a click or drag on the sphere focuses it, and the wheel then zooms the view.
    this.element.tabIndex = -1;
    this.element.dataset.captureWheel = "true";
    this.canvas = document.createElement("canvas");
    Object.assign(this.canvas.style, { width: "100%", height: "100%", display: "block", touchAction: "none" });
    this.label = document.createElement("div");
    Object.assign(this.label.style, {
      position: "absolute", left: "8px", bottom: "6px", font: "12px sans-serif", color: "#ddd",
      textShadow: "0 0 3px #000", pointerEvents: "none",
    });
    // Play / pause, shown for a video only.
    this.playButton = document.createElement("button");
    this.playButton.className = "panorama-360-play";
    this.playButton.type = "button";
    Object.assign(this.playButton.style, {
      position: "absolute", right: "8px", bottom: "6px", minWidth: "30px", height: "24px", padding: "0 8px",
      font: "13px sans-serif", color: "#eee", background: "rgba(0, 0, 0, 0.55)", border: "1px solid #666",
      borderRadius: "4px", cursor: "pointer", display: "none",
    });
    this.element.append(this.canvas, this.label, this.playButton);
    this.images = [];
    this.index = 0;
    this.frames = 0;
    this.reset();
    this.setState("empty", "Run the workflow: the 360 panorama appears here.");
    this.initGL();
    this.bindPointer();
    new ResizeObserver(() => this.requestDraw()).observe(this.element);
  }

  setState(state, text) {
    this.element.dataset.state = state;
    this.label.textContent = text;
  }

  reset() {
    this.yaw = 0;
    this.pitch = 0;
    this.fov = FOV.initial;
    this.publishView();
  }

  publishView() {
    Object.assign(this.element.dataset, { yaw: this.yaw.toFixed(2), pitch: this.pitch.toFixed(2), fov: this.fov.toFixed(1) });
    this.requestDraw();
  }

  initGL() {
    const gl = this.canvas.getContext("webgl2", { preserveDrawingBuffer: true });
    if (!gl) {
      this.setState("error", "This browser has no WebGL 2: the 360 view is not available.");
      return;
    }
    this.gl = gl;
    this.program = program(gl);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const corner = gl.getAttribLocation(this.program, "corner");
    gl.enableVertexAttribArray(corner);
    gl.vertexAttribPointer(corner, 2, gl.FLOAT, false, 0, 0);
    this.texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    // REPEAT across: the image's ends join, so sampling wraps like the panorama.
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.REPEAT);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    // No mipmaps: the longitude jumps at the back of the sphere would pick the coarsest level there.
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    this.uniforms = Object.fromEntries(["yaw", "pitch", "focal", "aspect", "band"]
      .map((name) => [name, gl.getUniformLocation(this.program, name)]));
  }

  bindPointer() {
    let drag = null;
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.stopPropagation();
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      this.element.focus({ preventScroll: true });
      drag = { x: event.clientX, y: event.clientY, yaw: this.yaw, pitch: this.pitch };
      this.element.style.cursor = "grabbing";
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drag) return;
      event.stopPropagation();
      // Grab the scene: a drag across the view turns it by about the field of view.
      const degreesPerPixel = this.fov / Math.max(1, canvas.clientHeight);
      this.yaw = drag.yaw - (event.clientX - drag.x) * degreesPerPixel;
      this.pitch = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, drag.pitch + (event.clientY - drag.y) * degreesPerPixel));
      this.publishView();
    });
    const release = (event) => {
      if (!drag) return;
      event.stopPropagation();
      drag = null;
      this.element.style.cursor = "grab";
    };
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("wheel", (event) => {
      event.stopPropagation();
      event.preventDefault();
      this.fov = Math.max(FOV.min, Math.min(FOV.max, this.fov * Math.exp(event.deltaY * 0.001)));
      this.publishView();
    }, { passive: false });
    canvas.addEventListener("dblclick", (event) => {
      event.stopPropagation();
      this.reset();
    });
    this.label.addEventListener("pointerdown", (event) => event.stopPropagation());
    this.label.addEventListener("click", (event) => {
      event.stopPropagation();
      this.show(this.index + 1);
    });
    this.playButton.addEventListener("pointerdown", (event) => event.stopPropagation());
    this.playButton.addEventListener("click", (event) => {
      event.stopPropagation();
      this.togglePlay();
    });
  }

  // urls: the files to show; a file is a video when `video` says so (the
  // output's "animated" flag) or its name is a video's.
  load(urls, video = false) {
    this.images = urls;
    this.video = video;
    this.show(0);
  }

  show(index) {
    if (!this.images.length || !this.gl) return;
    this.index = index % this.images.length;
    const url = this.images[this.index];
    this.stopVideo();
    if (this.video || VIDEO_FILE.test(new URL(url, location.href).searchParams.get("filename") ?? "")) {
      this.showVideo(url);
      return;
    }
    // The caption steps through a batch, so only then does it take clicks.
    Object.assign(this.label.style, this.images.length > 1
      ? { pointerEvents: "auto", cursor: "pointer" } : { pointerEvents: "none", cursor: "" });
    this.setState("loading", "Loading…");
    const image = new Image();
    image.crossOrigin = "anonymous";
    image.onload = () => {
      if (this.images[this.index] !== url) return;
      const gl = this.gl;
      gl.bindTexture(gl.TEXTURE_2D, this.texture);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE,
        textureSource(image, image.naturalWidth, image.naturalHeight, gl.getParameter(gl.MAX_TEXTURE_SIZE)));
      // Full height of the sphere at this width: a 2:1 image is all of it.
      this.band = (Math.PI / 2) * Math.min(1, image.naturalHeight / (image.naturalWidth / 2));
      this.loaded = true;
      const count = this.images.length > 1 ? ` · ${this.index + 1}/${this.images.length} (click)` : "";
      this.setState("ready", `${image.naturalWidth}×${image.naturalHeight} · drag to look, scroll to zoom${count}`);
      this.requestDraw();
    };
    image.onerror = () => this.setState("error", `Could not load ${url}`);
    image.src = url;
  }

  showVideo(url) {
    this.setState("loading", "Loading…");
    const video = document.createElement("video");
    Object.assign(video, { muted: true, loop: true, playsInline: true, autoplay: true, crossOrigin: "anonymous" });
    video.setAttribute("muted", "");
    video.setAttribute("playsinline", "");
    this.videoElement = video;
    this.element.dataset.kind = "video";
    this.element.dataset.uploads = "0";
    video.addEventListener("loadeddata", () => {
      if (this.videoElement !== video) return;
      this.band = (Math.PI / 2) * Math.min(1, video.videoHeight / (video.videoWidth / 2));
      this.uploadFrame();
      this.loaded = true;
      this.setState("ready", `${video.videoWidth}×${video.videoHeight} video · drag to look, scroll to zoom`);
      this.requestDraw();
    });
    video.addEventListener("play", () => this.videoChanged());
    video.addEventListener("pause", () => this.videoChanged());
    video.addEventListener("error", () => {
      if (this.videoElement === video) this.setState("error", `Could not play ${url}`);
    });
    this.playButton.style.display = "";
    video.src = url;
    this.videoChanged();
    // Autoplay of a muted video is allowed; play() also starts it where the attribute alone would wait.
    video.play().catch(() => this.videoChanged());
  }

  videoChanged() {
    const video = this.videoElement;
    const playing = !!video && !video.paused;
    this.element.dataset.playing = String(playing);
    this.playButton.textContent = playing ? "❚❚" : "▶";
    this.playButton.title = playing ? "Pause" : "Play";
    // Paused: the frame it stopped at stays on the sphere.
    if (video && !playing && this.loaded) this.uploadFrame();
    this.requestDraw();
  }

  togglePlay() {
    const video = this.videoElement;
    if (!video) return;
    if (video.paused) video.play().catch(() => this.videoChanged());
    else video.pause();
  }

  // The video's current frame into the sphere's texture.
  uploadFrame() {
    const gl = this.gl;
    const video = this.videoElement;
    if (!gl || !video || video.readyState < 2) return;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE,
      textureSource(video, video.videoWidth, video.videoHeight, gl.getParameter(gl.MAX_TEXTURE_SIZE)));
    this.uploadedTime = video.currentTime;
    this.element.dataset.uploads = String(Number(this.element.dataset.uploads) + 1);
    this.element.dataset.videoTime = video.currentTime.toFixed(3);
  }

  stopVideo() {
    const video = this.videoElement;
    this.playButton.style.display = "none";
    delete this.element.dataset.kind;
    delete this.element.dataset.playing;
    if (!video) return;
    this.loaded = false;
    this.videoElement = null;
    video.pause();
    video.removeAttribute("src");
    video.load();
  }

  // Browsers keep only a few WebGL contexts alive; a removed node gives its own back.
  dispose() {
    this.stopVideo();
    this.gl?.getExtension("WEBGL_lose_context")?.loseContext();
    this.gl = null;
  }

  requestDraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.draw();
    });
  }

  draw() {
    const gl = this.gl;
    if (!gl || !this.loaded) return;
    const video = this.videoElement;
    if (video && !video.paused) {
      // While the video plays, every animation frame draws; a new video frame is uploaded first.
      if (video.currentTime !== this.uploadedTime) this.uploadFrame();
      this.requestDraw();
    }
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    gl.viewport(0, 0, width, height);
    gl.useProgram(this.program);
    gl.uniform1f(this.uniforms.yaw, radians(this.yaw));
    gl.uniform1f(this.uniforms.pitch, radians(this.pitch));
    gl.uniform1f(this.uniforms.focal, 1 / Math.tan(radians(this.fov) / 2));
    gl.uniform1f(this.uniforms.aspect, width / height);
    gl.uniform1f(this.uniforms.band, this.band);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    this.frames += 1;
    this.element.dataset.frames = String(this.frames);
  }
}

function imageUrl({ filename, subfolder, type }) {
  const params = new URLSearchParams({ filename, subfolder: subfolder ?? "", type: type ?? "output" });
  return api.apiURL(`/view?${params}`);
}

app.registerExtension({
  name: "comfyui_panorama_diffusion.panorama360viewer",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!VIEWER_NODES.has(nodeData.name)) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      this.panoramaView = new SphereView();
      const widget = this.addDOMWidget(WIDGET, "panorama360", this.panoramaView.element, {
        hideOnZoom: false,
        getMinHeight: () => 200,
      });
      widget.serialize = false; // as ComfyUI's own video widget: no value in the saved workflow
      this.setSize([Math.max(this.size[0], 480), Math.max(this.size[1], 340)]);
      // The sphere replaces the flat preview ComfyUI shows for nodes with image outputs:
      // the LiteGraph canvas draws `node.imgs`, which stays empty here; the Vue node UI
      // ("Nodes 2.0"; checked on frontend 1.49) reads the output store instead and skips
      // nodes that set `hideOutputImages`, as the frontend's own Painter and Image Crop do.
      Object.defineProperty(this, "imgs", { get: () => undefined, set: () => {}, configurable: true });
      this.hideOutputImages = true;
      if (nodeData.name === VIDEO_NODE) {
        // The canvas's flat video player for animated outputs (frontends 1.27 to 1.58) adds its
        // widget to a node's `videoContainer` the first time; one that is always there and keeps
        // nothing leaves the sphere alone (the Vue node UI skips it by `hideOutputImages`).
        const container = document.createElement("div");
        container.replaceChildren = () => {};
        Object.defineProperty(this, "videoContainer", { get: () => container, set: () => {}, configurable: true });
      }
      return result;
    };

    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      this.panoramaView?.dispose();
      return onRemoved?.apply(this, arguments);
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const result = onExecuted?.apply(this, arguments);
      const images = message?.images ?? [];
      // Save 360 Video's output is ComfyUI's animated one (as Save WEBM's): {images: [file], animated: [true]}.
      const video = !!message?.animated?.[0] && images.some((image) => VIDEO_FILE.test(image.filename ?? ""));
      if (images.length) this.panoramaView?.load(images.map(imageUrl), video);
      return result;
    };
  },
});
