# shellcheck shell=bash
# Makes sure a Vulkan loader is present and points it at NVIDIA's ICD when that lives outside
# the standard folders. Source it. VULKAN_DEBS may name a folder of Debian packages to unpack
# (as root) on machines without a loader.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  if [ -n "${VULKAN_DEBS:-}" ]; then
    for f in "$VULKAN_DEBS"/*.deb; do dpkg -x "$f" /; done
    ldconfig
  else
    echo "no Vulkan loader (libvulkan.so.1); install libvulkan1 or set VULKAN_DEBS" >&2
    return 1
  fi
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
             /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
  done
fi
