#!/usr/bin/env bash
# The main job: validate every shipped spec against its expected answers, show the
# summary table and the worked answers of the course's exercises, the init
# recommendations, and prove LeNet-5's numbers against PyTorch (with training) and
# ResNet-18's (structure and initialisation).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh verify,plot
archcalc=.venv/bin/archcalc
$archcalc check specs/*.yaml specs/zoo/*.yaml
for spec in specs/lenet5.yaml specs/alexnet.yaml specs/atari_dqn.yaml; do
    echo
    $archcalc analyze "$spec"
done
echo
$archcalc explain specs/atari_dqn.yaml
echo
$archcalc explain specs/alexnet_conv1_224.yaml --layer conv1
echo
$archcalc explain specs/quiz_conv.yaml
echo
$archcalc init specs/deep_relu_mlp.yaml --scheme lecun
echo
$archcalc verify specs/lenet5.yaml --steps 300
echo
# a zoo model: structure and init predictions against PyTorch (training is optional for these)
$archcalc verify specs/zoo/resnet18.yaml --steps 0 --seeds 2 --schemes recommended,torch_default
